// oldphoto serve: the page.  Plain JavaScript, no library, nothing loaded from elsewhere.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const OPTION_IDS = ["dust", "dark_dust", "fidelity", "faces", "hr", "upscale", "unfade", "denoise", "remove_grain", "keep_tone", "colour",
                    "mask_threshold", "mask_dilation", "face_detector", "format", "quality"];
let config = null;
const pending = [];          // files chosen but not sent yet: {file, card}
const cards = new Map();     // photo id -> card element
let sending = false;
let polling = null;
let lastAsked = Date.now();  // when the page last asked the server about its photos (any request keeps them)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function millions(n, unit) { return (n / 1e6).toFixed(n < 1e7 ? 1 : 0) + " " + unit; }
function megabytes(bytes) { return millions(bytes, "MB"); }
function megapixels(pixels) { return millions(pixels, "Mpx"); }

// ------------------------------------------------------------------------------------------- options
// a server message into an element: `quoted commands` as <code>, the rest as text (never parsed as HTML)
function showCode(element, message) {
  element.replaceChildren(...message.split("`").map((part, i) => {
    if (i % 2 === 0) return document.createTextNode(part);
    const code = document.createElement("code");
    code.textContent = part;
    return code;
  }));
}

function applyDefaults() {
  const d = config.defaults;
  for (const radio of document.querySelectorAll("input[name=scratches]")) radio.checked = radio.value === d.scratches;
  $("#fidelity").value = d.fidelity;
  $("#faces").checked = config.faces_available && d.faces !== false;
  $("#faces").disabled = !config.faces_available;
  if (!config.faces_available) {
    const note = $("#faces-note");
    note.hidden = false;
    const why = config.notices.find(n => n.startsWith("face enhancement is off: "));
    showCode(note, "Not available on this server" +
      (why ? ": " + why.replace(/^face enhancement is off: /, "") : "."));
  }
  $("#dust").checked = d.dust;
  $("#dark_dust").checked = d.dark_dust;
  if (!config.face_detection_available) {
    $("#dark-dust-faces").textContent = "Faces are not looked for on this server (dlib-bin is not installed): " +
      "moles and freckles can go too.";
  }
  $("#hr").checked = d.hr;
  if (config.hr_above !== null && config.hr_above !== undefined) {  // (the label alone suggests ticking it)
    $("#hr-note").textContent = `Photos of more than ${config.hr_above} megapixels are repaired this way ` +
      "anyway; ticked, smaller ones too (slower), and faces are enhanced at 512 pixels.";
  }
  $("#upscale").value = String(d.upscale);
  $("#unfade").value = d.unfade;
  $("#upscale").disabled = !config.upscale_available;
  if (!config.upscale_available) {
    showCode($("#upscale-note"), "Not available on this server: `oldphoto weights download realesrgan` installs it.");
  }
  $("#denoise").checked = d.denoise;
  $("#remove_grain").checked = d.remove_grain;
  $("#keep_tone").checked = d.keep_tone;
  $("#colour").value = d.colour;
  $("#mask_threshold").value = d.mask_threshold ?? "";
  $("#mask_dilation").value = d.mask_dilation ?? "";
  $("#face_detector").value = d.face_detector;
  $("#format").value = d.format;
  $("#quality").value = d.quality;
  showFidelity();
  const formats = config.heic_available ? "JPEG, PNG, TIFF, WebP or HEIC" : "JPEG, PNG, TIFF or WebP";
  $("#drop-note").textContent = `${formats}, up to ${megabytes(config.max_upload)} each`;
  $("#version").textContent = `oldphoto ${config.version}`;
}

function showFidelity() {
  const slider = $("#fidelity");
  const value = slider.dataset.touched ? Number(slider.value) : config.defaults.fidelity;
  $("#fidelity-value").textContent = value.toFixed(2);
}

// Only the options the user changed are sent: the others are the server's defaults, exactly as an
// `oldphoto restore` without those flags.
// An Error naming the field as the page does when a number is out of its range (the server's message
// named the command line's flag: "--mask-threshold must be between 0 and 1, got 5.0").
function chosenOptions() {
  for (const id of OPTION_IDS) {
    const input = $("#" + id);
    if (!input.disabled && input.type === "number" && !input.checkValidity()) {
      const name = input.closest("label").firstChild.textContent.trim();
      throw new Error(`\u201c${name}\u201d takes a number from ${input.min}` +
                      (input.max ? ` to ${input.max}` : "") + ` (${input.value} is given)`);
    }
  }
  const d = config.defaults;
  const params = new URLSearchParams();
  const scratches = $("input[name=scratches]:checked").value;
  if (scratches !== d.scratches) params.set("scratches", scratches);
  for (const id of OPTION_IDS) {
    const input = $("#" + id);
    if (input.disabled) continue;
    let value = input.type === "checkbox" ? input.checked : input.value;
    let initial = d[id];
    if (id === "faces") initial = config.faces_available && d.faces !== false;
    if (input.type === "range" && !input.dataset.touched) continue;  // (a default off the slider's steps)
    if (input.type === "number" || input.type === "range") {
      if (value === "") continue;
      if (initial !== null && Number(value) === Number(initial)) continue;
    } else if (String(value) === String(initial)) continue;  // (a select's value is text)
    params.set(id, input.type === "checkbox" ? (value ? "on" : "off") : value);
  }
  return params;
}

// ------------------------------------------------------------------------------------------- cards
function makeCard(name) {
  const card = el("li", {class: "card", "data-status": "ready"},
    el("div", {class: "card-head"},
      el("h3", {class: "name", text: name}),  // (a screen reader goes from photo to photo by heading)
      el("span", {class: "state", text: "ready to restore"}),
      el("button", {class: "remove quiet", title: "Remove this photo", "aria-label": "Remove " + name, text: "\u00d7"})),
    el("progress", {max: "1", hidden: "", "aria-label": "Progress of " + name}));
  $("#cards").append(card);
  $("#results").hidden = false;
  return card;
}

// the first control in `root` that the keyboard can reach (a card's × button, a result's slider)
function firstControl(root) {
  return root.querySelector("button:not(:disabled), input:not(:disabled), select:not(:disabled), a[href]");
}

// While a card's result (or error) makes way for its progress, the focus waits on its status line, made
// focusable for that while only: a screen reader reads where the photo is, Tab goes on from the card.
function holdFocus(card) {
  const state = $(".state", card);
  state.tabIndex = -1;
  state.addEventListener("blur", () => state.removeAttribute("tabindex"), {once: true});
  state.focus();
}

function setState(card, status, text) {
  card.dataset.status = status;
  $(".state", card).textContent = text;
}

function showError(card, text) {
  let box = $(".error", card);
  if (!box) {
    // (a photo that had failed before the page was reloaded is shown as it is, not read out again)
    const quiet = card.dataset.failedBefore === "1";
    delete card.dataset.failedBefore;
    box = el("p", quiet ? {class: "error"} : {class: "error", role: "alert"}, el("span", {class: "message"}));
    card.append(box);
  }
  const message = $(".message", box);
  if (message.textContent !== text) message.textContent = text;  // (polled every second: nothing else moves)
  $("progress", card).hidden = true;
}

// a screen reader hears that a photo is restored (the cards' own states change every second: not read
// out), and what the page says after an action where only the eyes would find it
function announce(text) {
  const region = $("#announce");
  region.append(el("p", {text}));
  while (region.childElementCount > 5) region.firstElementChild.remove();
}

function seconds(s) {
  if (s < 90) return `${Math.round(s)} s`;
  return `${Math.round(s / 60)} min`;
}

function update(card, photo) {
  card.dataset.id = photo.id;
  const bar = $("progress", card);
  if (photo.status === "queued") {
    let text = photo.ahead ? `waiting: ${photo.ahead} photo${photo.ahead > 1 ? "s" : ""} before this one` : "waiting";
    // (a wait of a few seconds is not worth a word; a long one is, for someone with a box of prints)
    if (photo.ahead && photo.wait >= 30) text += `, about ${seconds(photo.wait)}`;
    setState(card, "queued", text);
    bar.hidden = false; bar.removeAttribute("value");
  } else if (photo.status === "running") {
    let text = `restoring\u2026 ${seconds(photo.elapsed || 0)}`;
    // (past the estimate, "3 s of about 2 s" said nothing worth reading)
    if (photo.estimate && (photo.elapsed || 0) <= photo.estimate) text += ` of about ${seconds(photo.estimate)}`;
    if (photo.stage) text += ` (${photo.stage})`;  // e.g. enlarging 40%
    setState(card, "running", text);
    bar.hidden = false;
    if (photo.estimate) bar.value = Math.min(0.95, (photo.elapsed || 0) / photo.estimate);
    else bar.removeAttribute("value");
  } else if (photo.status === "failed") {
    setState(card, "failed", "could not be restored");
    showError(card, photo.reason || "failed");
    const error = $(".error", card);
    if (photo.retry && !$(".restore-again", error)) {  // (e.g. faces asked for where they cannot be)
      const again = el("button", {class: "quiet restore-again", text: "Try again with the options above"});
      const note = el("span", {class: "note"});
      again.addEventListener("click", () => sendBack(photo, () => `again?${chosenOptions()}`, null, again, note));
      error.append(" ", again, " ", note);
    }
  } else if (photo.status === "done" && card.dataset.shown !== `${photo.id}:${photo.revision}`) {
    card.dataset.shown = `${photo.id}:${photo.revision}`;  // (sent back: each new result shown once)
    const waited = card.dataset.status !== "done";  // (not: a result from before a reload, shown again)
    setState(card, "done", `restored in ${seconds(photo.seconds)}`);
    if (waited) announce(`${$(".name", card).textContent}: ${$(".state", card).textContent}`);
    bar.hidden = true;
    const old = $(".compare", card);
    // the focus on the card's status line (it was restored again) or on the result replaced: on the new one
    const focused = document.activeElement;
    const refocus = focused === $(".state", card) || (old && old.contains(focused));
    if (old) old.remove();
    const box = comparison(photo);
    card.append(box);
    if (refocus) firstControl(box).focus();
    $("#zip").hidden = false;
  }
}

// what a user can do about scratch-like lines that --scratches auto left alone
const REPAIR_LINES = "To repair them, choose \u201cRepair every defect found\u201d above and press " +
  "\u201cRestore again\u201d, or mark them by hand.";

function describeRepair(photo) {
  const r = photo.restoration;
  if (!r) return "";
  const unfaded = r.unfade_stretched_nothing  // the record says so where the command line does
    ? " Restoring its contrast found nothing to stretch: its tones already reach black and white (a " +
      "glint, a lamp or a white frame within the picture can set its white point)."
    : "";
  return describeDefects(photo) + unfaded;
}

function describeDefects(photo) {
  const r = photo.restoration;
  if (r.path === "quality") {
    if (photo.marked) return "Nothing was repaired: no area is marked as a defect.";
    const d = r.defects;
    if (!d) return "Scratches and dust were not looked for.";
    if (d.lines_left_alone) {  // the record says so where the command line does (oldphoto.batch)
      return "Nothing was repaired: lines that look like scratches were found, but they may belong to " +
        "the picture (wires, grass, edges). " + REPAIR_LINES;
    }
    return d.strokes || d.specks
      ? "Nothing was repaired: no clear scratches or tears (a few small marks were left as they are)."
      : "No scratches or dust were found.";
  }
  const pct = (100 * r.repaired_fraction).toFixed(r.repaired_fraction < 0.01 ? 2 : 1);
  if (photo.marked) {  // marking starts from the earlier repair's areas: the repair is theirs, edited
    return `Repaired ${pct}% of the photo: the areas marked by hand (those the earlier restoration ` +
      "repaired, if any, with your marks added and the areas you unmarked left out).";
  }
  const parts = [];
  const d = r.defects || {};
  // (the fine dust --dust adds to the detector's specks: "14 dust specks, 348 specks of dust" read as one
  // thing said twice)
  const dust = d.dust ? `${d.dust} ${d.specks && !d.dust_only ? "more " : ""}speck${d.dust > 1 ? "s" : ""} ` +
    "of fine dust" : "";
  if (d.dust_only) {  // --dust repaired the dust alone: what the detector found was left as it is
    return `Repaired ${pct}% of the photo (${dust}).` + (d.lines_left_alone
      ? " Lines that look like scratches were left alone: they may belong to the picture (wires, grass, " +
        "edges). " + REPAIR_LINES
      : "");
  }
  if (d.strokes) parts.push(`${d.strokes} scratch${d.strokes > 1 ? "es" : ""}`);
  if (d.specks) parts.push(`${d.specks} dust speck${d.specks > 1 ? "s" : ""}`);
  if (d.blobs) parts.push(`${d.blobs} hole${d.blobs > 1 ? "s" : ""} or stain${d.blobs > 1 ? "s" : ""}`);
  if (dust) parts.push(dust);
  return `Repaired ${pct}% of the photo` + (parts.length ? ` (${parts.join(", ")}).` : ".") +
    (d.lines_in_doubt  // as the command line says it (oldphoto.batch)
      ? " Some of these lines may belong to the picture (highlights, wires, branches): tick \u201cShow " +
        "repaired areas\u201d and look. To keep them, press \u201cMark defects by hand\u2026\u201d, tick " +
        "\u201cUnmark\u201d and paint over them; or choose \u201cLeave them alone\u201d above and press " +
        "\u201cRestore again\u201d (no defect is repaired then)."
      : "");
}

function comparison(photo) {
  const base = `/api/photos/${photo.id}`;
  // each result's pictures at an address of their own: a browser shows an image it has already shown
  // from the same address again, whatever the server says about caching, and a photo restored again
  // kept its first result on the page
  const revision = `?revision=${photo.revision}`;
  // (the grip's triangles and the tags, the pictures' names again, are not read out)
  const frame = el("div", {class: "frame"},
    el("img", {class: "after", src: `${base}/preview/after.jpg${revision}`, alt: `${photo.name}, restored`}),
    el("img", {class: "before", src: `${base}/preview/before.jpg${revision}`, alt: `${photo.name}, original`}),
    el("img", {class: "overlay", src: `${base}/preview/overlay.png${revision}`, alt: `${photo.name}, repaired areas`,
               hidden: ""}),
    el("div", {class: "faces", hidden: ""}),
    el("div", {class: "handle", "aria-hidden": "true"}),
    el("span", {class: "tag tag-before", text: "Before", "aria-hidden": "true"}),
    el("span", {class: "tag tag-after", text: "After", "aria-hidden": "true"}));
  // its size in app.css from the photo's pixels: fitted (never above 100 %), or 100 % in a scrolled view
  frame.style.setProperty("--w", photo.width);
  frame.style.setProperty("--h", photo.height);
  frame.style.setProperty("--pos", "50%");
  const view = el("div", {class: "view"}, frame);
  // step "any": a click puts the split exactly there, and an arrow key moves it by 1 % (0.1 was invisible)
  const slider = el("input", {type: "range", class: "slider", min: "0", max: "100", value: "50", step: "any",
                              "aria-label": "Slide to compare before and after"});
  slider.addEventListener("input", () => frame.style.setProperty("--pos", slider.value + "%"));
  frame.append(slider);
  let focus = {x: 0.5, y: 0.5};  // where the 100 % view opens: the last point clicked, else the centre
  slider.addEventListener("pointerdown", event => {
    const r = frame.getBoundingClientRect();
    focus = {x: (event.clientX - r.left) / r.width, y: (event.clientY - r.top) / r.height};
  });
  for (const box of photo.faces || []) {
    const face = el("div", {class: "face"});
    face.style.left = `${100 * box[0]}%`; face.style.top = `${100 * box[1]}%`;
    face.style.width = `${100 * (box[2] - box[0])}%`; face.style.height = `${100 * (box[3] - box[1])}%`;
    $(".faces", frame).append(face);
  }
  const maskToggle = el("input", {type: "checkbox", class: "show-mask"});
  maskToggle.addEventListener("change", () => { $(".overlay", frame).hidden = !maskToggle.checked; });
  const tools = el("div", {class: "tools"});
  const actualNote = el("span", {class: "note actual-note", role: "status", hidden: ""});  // (loading, failed)
  const actualToggle = el("input", {type: "checkbox", class: "actual-size"});
  const inSight = () => {  // the part of the frame in the view: the tags and the handle's grip stay there
    frame.style.setProperty("--seen-top", view.scrollTop + "px");
    frame.style.setProperty("--seen-left", view.scrollLeft + "px");
    frame.style.setProperty("--seen-right", Math.max(0, frame.offsetWidth - view.scrollLeft - view.clientWidth) + "px");
    frame.style.setProperty("--seen-height", Math.min(frame.offsetHeight, view.clientHeight) + "px");
  };
  view.addEventListener("scroll", inSight);
  actualToggle.addEventListener("change", () => {
    if (actualToggle.checked && !frame.dataset.full) loadFull(frame, base, revision, actualNote);
    view.classList.toggle("actual", actualToggle.checked);
    scrollableByKeys(view, actualToggle.checked, `${photo.name} at 100 %: the arrow keys scroll it`);
    if (actualToggle.checked) {  // the point in the middle of the view (the split passes through it)
      view.scrollLeft = focus.x * frame.offsetWidth - view.clientWidth / 2;
      view.scrollTop = focus.y * frame.offsetHeight - view.clientHeight / 2;
      inSight();
    }
  });
  tools.append(el("label", {title: "One pixel of the photo on each pixel of the screen"}, actualToggle, " 100 %"));
  const limit = config.full_view_pixels;
  if (limit && photo.width * photo.height > limit) {
    actualToggle.disabled = true;
    actualNote.hidden = false;
    actualNote.textContent = `(${megapixels(photo.width * photo.height)}: too large for the 100 % view ` +
      `here, at most ${megapixels(limit)}; download it to see it at full size)`;
  }
  tools.append(actualNote);
  if (photo.restoration && photo.restoration.path !== "quality") {
    tools.append(el("label", {}, maskToggle, " Show repaired areas ", el("span", {class: "swatch swatch-mask"})));
  }
  if (photo.faces && photo.faces.length) {
    const facesToggle = el("input", {type: "checkbox", class: "show-faces"});
    facesToggle.addEventListener("change", () => { $(".faces", frame).hidden = !facesToggle.checked; });
    tools.append(el("label", {}, facesToggle, ` Show the ${photo.faces.length} face${photo.faces.length > 1 ? "s" : ""} found `,
                    el("span", {class: "swatch swatch-face"})));
  }
  tools.append(
    el("span", {class: "spacer"}),
    el("a", {class: "button quiet mask-download", href: `${base}/mask${revision}`, download: "", text: "Download mask"}),
    el("a", {class: "button primary download", href: `${base}/download${revision}`, download: "", text: "Download restored photo"}));
  // not quite right: the user's own marks, or other options, without sending the photo again
  const markButton = el("button", {class: "quiet mark-start", text: "Mark defects by hand\u2026",
                                   title: "Paint over the scratches and dust the repair missed, or unmark what it should have left alone"});
  const againButton = el("button", {class: "quiet restore-again", text: "Restore again with the options above",
                                    title: "Restore this photo again with the options now chosen above"});
  againButton.addEventListener("click", () => sendBack(photo, () => `again?${chosenOptions()}`, null, againButton,
                                                      $(".summary", box)));
  const fixes = el("div", {class: "tools fixes"}, el("span", {class: "note", text: "Not quite right?"}),
                   markButton, againButton);
  const box = el("div", {class: "compare"}, view, el("p", {class: "summary", text: describeRepair(photo)}), tools,
                 fixes);
  markButton.addEventListener("click", () => startMarking(photo, frame, box, markButton));
  if (photo.warnings && photo.warnings.length) {
    const list = el("ul", {class: "warnings"});
    for (const w of photo.warnings) list.append(el("li", {text: w}));
    box.append(list);
  }
  return box;
}

// A view scrolled both ways: the slider in it takes the arrow keys, so the view itself is reached with
// Tab (before the slider), named, where the arrows scroll it; a mouse or a finger was the only way.
function scrollableByKeys(view, on, name) {
  if (on) {
    view.tabIndex = 0;
    view.setAttribute("role", "group");
    view.setAttribute("aria-label", name);
  } else {
    for (const attribute of ["tabindex", "role", "aria-label"]) view.removeAttribute(attribute);
  }
}

// ------------------------------------------------------------------------------------------- marking
// Defects marked by hand: the user paints over the original (the repaired areas shown in red) in yellow
// where a defect was missed, in blue where something was repaired that should not have been; the marks
// go to the server as a gray picture (white: defect, black: not one, gray: as repaired) of at most
// MARKS_SIDE pixels, which restores the photo again with them (oldphoto.web.marks).  4096: a scan up to that
// size is marked pixel for pixel in the 100 % view (a larger one a little coarser: generous marks).
const MARKS_SIDE = 4096;
const MARK_RGB = [255, 205, 0], UNMARK_RGB = [0, 150, 255];
// With the keyboard: the arrow keys move the brush by these CSS pixels (with Shift: the second), + and -
// change its size by BRUSH_STEP.
const KEY_STEPS = [2, 20], BRUSH_STEP = 2;
let markings = 0;  // (ids for the keys' description, one per marking)
let lastMarking = null;  // the canvas of the marking used last (Ctrl+Z with the focus outside any)
const TEXT_FIELDS = "textarea, input:not([type=checkbox]):not([type=radio]):not([type=range]):not([type=file])";

function startMarking(photo, frame, box, markButton) {
  const scale = Math.min(1, MARKS_SIDE / Math.max(photo.width, photo.height));
  // (a canvas has no name of its own: a screen reader says what it is, and how to paint on it; an
  // application, as it takes the arrow keys that a screen reader would otherwise keep for reading)
  const keysId = `marking-keys-${++markings}`;
  const canvas = el("canvas", {class: "marks", width: String(Math.max(1, Math.round(photo.width * scale))),
                               height: String(Math.max(1, Math.round(photo.height * scale))),
                               role: "application", tabindex: "0", "aria-describedby": keysId,
                               "aria-label": "Marks over the photo, painted with a mouse, pen or touch, " +
                                             "or with the keyboard"});
  const paint = canvas.getContext("2d");
  const size = el("input", {type: "range", min: "2", max: "80", value: "14", class: "brush",
                            "aria-label": "Brush size"});
  const erase = el("input", {type: "checkbox", class: "unmark"});
  const restored = el("input", {type: "checkbox", class: "paint-on-restored"});  // see what still needs it
  const note = el("span", {class: "note marking-note", role: "status"});
  const send = el("button", {class: "primary mark-send", text: "Repair marked areas"});
  const undo = el("button", {class: "quiet mark-undo", text: "Undo", title: "Undo the last stroke (Ctrl+Z)"});
  const clear = el("button", {class: "quiet", text: "Clear marks"});
  const cursor = el("div", {class: "brush-cursor", hidden: ""});
  const cancel = el("button", {class: "quiet mark-cancel", text: "Cancel", "aria-keyshortcuts": "Escape",
                               title: "Stop marking, dropping the marks (Escape)"});
  const bar = el("div", {class: "tools marking-tools"},
    el("span", {text: "Paint over what the repair missed "}), el("span", {class: "swatch swatch-marked"}),
    el("label", {title: "Paint over areas that were repaired but are no defects"}, erase, " Unmark ",
       el("span", {class: "swatch swatch-unmarked"})),
    el("label", {}, "Brush ", size), undo, clear,
    el("label", {title: "Paint over the restored photo, to see what is still to repair"}, restored, " On the restored photo"),
    el("span", {class: "spacer"}), note, cancel, send,
    el("p", {class: "note marking-keys", id: keysId}, "With the keyboard, on the photo: ",
       el("span", {class: "keys"}, el("kbd", {text: "\u2190"}), " ", el("kbd", {text: "\u2191"}), " ",
          el("kbd", {text: "\u2192"}), " ", el("kbd", {text: "\u2193"})), " move the brush (with ", el("kbd", {text: "Shift"}), ", ten times farther); ",
       el("kbd", {text: "Space"}), " or ", el("kbd", {text: "Enter"}), " starts or stops painting; ",
       el("kbd", {text: "U"}), " switches between marking and unmarking; ", el("kbd", {text: "+"}), " and ",
       el("kbd", {text: "\u2212"}), " change the brush\u2019s size; ", el("kbd", {text: "Ctrl+Z"}),
       " takes the last stroke back; ", el("kbd", {text: "Esc"}), " lifts the brush, or else stops marking, " +
       "as Cancel (asking first if anything is painted)."));
  restored.addEventListener("change", () => frame.classList.toggle("marking-restored", restored.checked));
  // right under the photo (after the buttons it was out of sight, below a photo that fills the screen)
  frame.closest(".view").after(bar);
  const overlay = $(".overlay", frame);
  frame.append(canvas, cursor);
  frame.classList.add("marking");
  const again = $(".restore-again", box);
  again.disabled = true;  // (one way back at a time)
  overlay.hidden = false;
  // the red areas shown while marking, and said so by their box (it stayed unticked: a user review)
  const maskToggle = $(".show-mask", box);
  const maskWas = maskToggle.checked;
  maskToggle.checked = maskToggle.disabled = true;
  markButton.disabled = true;
  // the strokes, kept as lines so that Undo can draw the others again: {erase, width, points}
  const strokes = [];
  const point = event => {
    const r = canvas.getBoundingClientRect();
    return [(event.clientX - r.left) * canvas.width / r.width, (event.clientY - r.top) * canvas.height / r.height];
  };
  const draw = (stroke, from) => {
    const [r, g, b] = stroke.erase ? UNMARK_RGB : MARK_RGB;
    paint.strokeStyle = paint.fillStyle = `rgb(${r}, ${g}, ${b})`;
    paint.lineWidth = stroke.width;
    paint.lineCap = paint.lineJoin = "round";
    const p = stroke.points;
    paint.beginPath();
    if (p.length === 1) { paint.arc(p[0][0], p[0][1], stroke.width / 2, 0, 2 * Math.PI); paint.fill(); return; }
    paint.moveTo(p[from][0], p[from][1]);
    for (let i = from + 1; i < p.length; i++) paint.lineTo(p[i][0], p[i][1]);
    paint.stroke();
  };
  const redraw = () => {
    paint.clearRect(0, 0, canvas.width, canvas.height);
    for (const stroke of strokes) draw(stroke, 0);
  };
  // the brush: where the pointer is, or where the keyboard moved it (canvas pixels; at first the middle)
  let at = [canvas.width / 2, canvas.height / 2];
  let keyed = false;  // the keyboard moved the brush last: its circle stays when the pointer leaves
  const perPixel = () => canvas.width / canvas.getBoundingClientRect().width;  // canvas pixels per CSS pixel
  const showCursor = () => {  // a circle of the brush's size where it is; filled while the keyboard paints
    cursor.hidden = false;
    cursor.style.width = cursor.style.height = size.value + "px";
    cursor.style.left = (at[0] / perPixel()) + "px";
    cursor.style.top = (at[1] / perPixel()) + "px";
    cursor.classList.toggle("unmarking", erase.checked);
    cursor.classList.toggle("painting", Boolean(active && active.keyboard));
    cursor.classList.toggle("keyed", keyed);
  };
  let active = null;  // the stroke being drawn: only a press on the canvas (or Space on it) starts one
  const begin = keyboard => {
    active = {erase: erase.checked, width: Number(size.value) * perPixel(), points: [at.slice()], keyboard};
    strokes.push(active);
    draw(active, 0);
  };
  canvas.addEventListener("pointerdown", event => {
    canvas.setPointerCapture(event.pointerId);
    at = point(event);
    keyed = false;
    begin(false);
  });
  canvas.addEventListener("pointermove", event => {
    if (active && active.keyboard) return;  // (the keyboard's stroke is not the mouse's to extend)
    at = point(event);
    keyed = false;
    showCursor();
    if (!active) return;
    active.points.push(point(event));
    draw(active, active.points.length - 2);
  });
  for (const name of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(name, () => { if (active && !active.keyboard) active = null; });
  }
  canvas.addEventListener("pointerleave", () => { if (!keyed) cursor.hidden = true; });
  // The keyboard: arrows move the brush, Space or Enter puts it down (a dot, then a line wherever it
  // moves) or lifts it; U switches marking and unmarking, + and - the size (a stroke going on goes on as
  // another with the new choice).  The changes are announced: a screen reader user cannot see them.
  const view = frame.parentElement;
  const inSight = () => {  // the brush on the screen: scrolled to in the 100 % view, and on the page
    const margin = 24, x = at[0] / perPixel(), y = at[1] / perPixel();
    if (view.classList.contains("actual")) {
      if (x - margin < view.scrollLeft) view.scrollLeft = x - margin;
      else if (x + margin > view.scrollLeft + view.clientWidth) view.scrollLeft = x + margin - view.clientWidth;
      if (y - margin < view.scrollTop) view.scrollTop = y - margin;
      else if (y + margin > view.scrollTop + view.clientHeight) view.scrollTop = y + margin - view.clientHeight;
    }
    const top = canvas.getBoundingClientRect().top + y;
    if (top < margin) window.scrollBy(0, top - margin);
    else if (top > window.innerHeight - margin) window.scrollBy(0, top - window.innerHeight + margin);
  };
  const where = () => `${Math.round(100 * at[0] / canvas.width)}% across, ${Math.round(100 * at[1] / canvas.height)}% down`;
  const restart = () => { if (active && active.keyboard) begin(true); };
  canvas.addEventListener("keydown", event => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;  // (Ctrl+Z is the document's)
    const arrows = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
    const key = event.key;
    if (key in arrows) {
      const step = KEY_STEPS[event.shiftKey ? 1 : 0] * perPixel();
      at = [Math.min(canvas.width, Math.max(0, at[0] + arrows[key][0] * step)),
            Math.min(canvas.height, Math.max(0, at[1] + arrows[key][1] * step))];
      if (active && active.keyboard) {
        active.points.push(at.slice());
        draw(active, active.points.length - 2);
      }
    } else if (key === " " || key === "Enter") {
      if (active && active.keyboard) {
        active = null;
        announce("Brush lifted.");
      } else {
        begin(true);
        announce(`Painting ${erase.checked ? "unmarks" : "marks"} at ${where()}: the arrow keys paint, ` +
                 "Space lifts the brush.");
      }
    } else if (key === "Escape" && active && active.keyboard) {  // (not yet the marking's Escape: below)
      active = null;
      event.stopPropagation();
      announce("Brush lifted.");
    } else if (key.toLowerCase() === "u") {
      erase.checked = !erase.checked;
      restart();
      announce(erase.checked ? "Unmark: painting leaves areas unrepaired." : "Mark: painting marks defects to repair.");
    } else if (key === "+" || key === "=" || key === "-" || key === "_") {
      const grow = key === "+" || key === "=" ? BRUSH_STEP : -BRUSH_STEP;
      size.value = String(Number(size.value) + grow);  // (the range keeps it within its bounds)
      restart();
      announce(`Brush ${size.value} pixels.`);
    } else return;
    event.preventDefault();  // (not the page's scrolling)
    keyed = true;
    showCursor();
    inSight();
  });
  canvas.addEventListener("focus", () => { if (canvas.matches(":focus-visible")) { keyed = true; showCursor(); } });
  canvas.addEventListener("blur", () => {
    if (active && active.keyboard) active = null;
    keyed = false;
    cursor.hidden = true;
  });
  const undoLast = () => {
    active = null;
    const undone = strokes.pop();
    redraw();
    if (!cursor.hidden) showCursor();
    announce(undone ? `Last stroke taken back; ${strokes.length} left.` : "Nothing to take back.");
  };
  undo.addEventListener("click", undoLast);
  // Ctrl+Z: the last stroke (unless the marking is gone) of the marking the focus is in, from its photo
  // or its tools (checkboxes and the brush's slider have no Ctrl+Z of their own); the focus elsewhere,
  // of the marking used last, unless typing in a field.  (Two photos marked at once: one stroke, not two.)
  box.addEventListener("focusin", () => { lastMarking = canvas; });
  lastMarking = canvas;
  const keys = event => {
    if (!canvas.isConnected) { document.removeEventListener("keydown", keys); return; }
    if (!((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z")) return;
    const target = event.target.closest ? event.target : document.body;
    const marking = target.closest(".compare");
    if (marking && marking.querySelector("canvas.marks")) {
      if (marking !== box || target.closest(TEXT_FIELDS)) return;
    } else if (lastMarking !== canvas || target.closest("input, select, textarea")) return;
    event.preventDefault();
    undoLast();
  };
  document.addEventListener("keydown", keys);
  clear.addEventListener("click", () => { strokes.length = 0; redraw(); });
  const stop = () => {
    document.removeEventListener("keydown", keys);
    box.removeEventListener("keydown", escape);
    canvas.remove(); cursor.remove(); bar.remove();
    frame.classList.remove("marking", "marking-restored");
    overlay.hidden = !maskWas;
    maskToggle.checked = maskWas;
    maskToggle.disabled = markButton.disabled = again.disabled = false;
    markButton.focus();  // (Cancel is gone with its bar: the keyboard goes back where it came from)
  };
  cancel.addEventListener("click", stop);
  // Escape, anywhere in the marking (the photo, its tools): as Cancel, but a key is pressed by mistake
  // more easily than a button: the strokes painted are dropped only once the user says so.
  const escape = event => {
    if (event.key !== "Escape" || event.defaultPrevented || send.disabled) return;  // (not while sent)
    event.preventDefault();
    const n = strokes.length;
    if (n && !confirm(`Stop marking by hand? The ${n} stroke${n > 1 ? "s" : ""} painted will be dropped.`)) return;
    stop();
  };
  box.addEventListener("keydown", escape);
  // (the button pressed is disabled: the keyboard goes on to the canvas, where it paints, the canvas's
  // description saying how; the page stays where it is, the tools appearing under the button pressed:
  // the brush starts in the photo's middle, and a key brings it into sight)
  canvas.focus({preventScroll: true});
  send.addEventListener("click", async () => {
    if (!strokes.length) { note.textContent = "Nothing is marked yet."; return; }
    note.textContent = "Sending\u2026";
    if (await sendBack(photo, "marks", await marksPicture(canvas), send, note)) {
      document.removeEventListener("keydown", keys);
      box.removeEventListener("keydown", escape);
    }
  });
}

// Restore a photo again (`what`: "marks" with the marks as the body, or "again?OPTIONS"): its result (or
// its error, `button`'s box) makes way for its progress, then for the new result.  Why it could not be
// sent goes into `note`; true when it was sent.
async function sendBack(photo, what, body, button, note) {
  const box = button.closest(".compare, .error");
  const hadFocus = box.contains(document.activeElement);
  button.disabled = true;  // (which may take the focus away from it: to the page's body)
  try {
    const path = typeof what === "function" ? what() : what;  // (the options, read when pressed)
    const reply = await fetch(`/api/photos/${photo.id}/${path}`, {method: "POST", body});
    const answer = await reply.json().catch(() => ({}));
    if (!reply.ok) throw new Error(answer.error || `error ${reply.status}`);
    const card = box.closest(".card");
    // the focus in the box that goes (or lost with the disabled button), not moved on elsewhere meanwhile
    const focused = document.activeElement;
    const keep = box.contains(focused) || (hadFocus && (!focused || focused === document.body));
    box.remove();
    if (keep) holdFocus(card);
    update(card, answer);
    startPolling();
    return true;
  } catch (e) {
    note.textContent = `Not sent: ${e.message}`;
    if (!note.closest("[role=status], [role=alert]")) announce(note.textContent);  // (a result's summary)
    button.disabled = false;
    if (hadFocus && document.activeElement === document.body) button.focus();  // (where it was)
    return false;
  }
}

// The painted canvas as the server's marks: opaque yellow -> white, opaque blue -> black, the rest gray.
function marksPicture(canvas) {
  const painted = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const out = document.createElement("canvas");
  out.width = canvas.width; out.height = canvas.height;
  const context = out.getContext("2d");
  const gray = context.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < painted.length; i += 4) {
    const level = painted[i + 3] < 128 ? 128 : painted[i] >= 128 ? 255 : 0;
    gray.data[i] = gray.data[i + 1] = gray.data[i + 2] = level;
    gray.data[i + 3] = 255;
  }
  context.putImageData(gray, 0, 0);
  return new Promise((resolve, reject) => out.toBlob(blob => blob ? resolve(blob) : reject(new Error("no picture")), "image/png"));
}

// The full-size pictures, fetched the first time the 100 % view is asked for (lossless PNGs made by the
// server on that request); until they arrive the previews stand in, enlarged.
async function loadFull(frame, base, revision, note) {
  frame.dataset.full = "loading";
  note.hidden = false;
  note.textContent = "Loading the full-size photo\u2026";
  try {
    const blobs = await Promise.all(["before", "after", "overlay"].map(async kind => {
      const response = await fetch(`${base}/preview/${kind}_full.png${revision}`);
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body.error || `error ${response.status}`);
      }
      return [kind, await response.blob()];
    }));
    await Promise.all(blobs.map(([kind, blob]) => new Promise((resolve, reject) => {
      const img = $("img." + kind, frame);
      const url = URL.createObjectURL(blob);
      img.addEventListener("load", () => { URL.revokeObjectURL(url); resolve(); }, {once: true});
      img.addEventListener("error", () => { URL.revokeObjectURL(url); reject(new Error("not shown")); }, {once: true});
      img.src = url;
    })));
    frame.dataset.full = "done";
    note.hidden = true;
  } catch (e) {
    delete frame.dataset.full;  // (turning the view on again tries again)
    note.textContent = `The full-size photo could not be loaded: ${e.message}`;
  }
}

// ------------------------------------------------------------------------------------------- sending
function addFiles(files) {
  for (const file of files) {
    const card = makeCard(file.name);
    const item = {file, card};
    $(".remove", card).addEventListener("click", () => removeCard(card, item));
    pending.push(item);
  }
  refreshButton();
  // (a screen reader is back on the chooser, which says "no file chosen": it is emptied for the next)
  if (files.length) announce($("#drop-added").textContent);
}

function refreshButton() {
  const n = pending.filter(p => !p.sent).length;
  $("#go").disabled = n === 0 || sending;
  $("#go").textContent = n > 1 ? `Restore ${n} photos` : "Restore photo" + (n === 1 ? "" : "s");
  $("#go-note").textContent = n === 0 ? (sending ? "" : "Add photos first.") : "";
  // said where they were dropped: the list and the button are below the options, out of sight
  const added = $("#drop-added");
  added.hidden = n === 0;
  added.textContent = n === 0 ? "" : `${n} photo${n > 1 ? "s" : ""} added: choose the options below, then ` +
    `press \u201c${$("#go").textContent}\u201d.`;
}

async function removeCard(card, item) {
  if (item) {
    item.removed = true;
    if (item.request) item.request.abort();  // being sent: stop (sendAll forgets it if it arrived)
  }
  // (while sendAll walks `pending`, taking an item out would make it skip the next: it drops them after)
  const index = pending.indexOf(item);
  if (index >= 0 && !item.sent && !sending) pending.splice(index, 1);
  if (card.dataset.id) {
    await fetch(`/api/photos/${card.dataset.id}`, {method: "DELETE"});
    cards.delete(card.dataset.id);
  }
  dropCard(card);
  afterRemoval();
  announce(`${$(".name", card).textContent} removed.`);
}

// A card taken off the page: the focus in it (unless moved on meanwhile) goes to the next card's first
// control, else the previous card's, else to the file chooser (a screen reader is not left on nothing).
function dropCard(card) {
  const refocus = card.contains(document.activeElement);
  const neighbour = card.nextElementSibling || card.previousElementSibling;
  card.remove();
  if (refocus) ((neighbour && firstControl(neighbour)) || $("#files")).focus();
}

function afterRemoval() {
  // nothing restored left: no 'Download all' that would fetch an empty answer; no card: no results
  if (!$("#cards .card[data-status=done]")) $("#zip").hidden = true;
  if (!$("#cards .card")) $("#results").hidden = true;
  refreshButton();
}

function upload(item, params) {
  return new Promise(resolve => {
    const request = new XMLHttpRequest();
    const query = new URLSearchParams(params);
    query.set("name", item.file.name);
    request.open("POST", "/api/photos?" + query.toString());
    request.responseType = "json";
    request.upload.onprogress = event => {
      if (event.lengthComputable) {
        setState(item.card, "uploading", `sending ${Math.round(100 * event.loaded / event.total)}%`);
        const bar = $("progress", item.card);
        bar.hidden = false; bar.value = event.loaded / event.total;
      }
    };
    request.onload = () => resolve({status: request.status, body: request.response,
                                    retry: Number(request.getResponseHeader("Retry-After") || 10)});
    request.onerror = () => resolve({status: 0, body: {error: "The server could not be reached."}, retry: 10});
    request.onabort = () => resolve({status: 0, body: null, retry: 0});
    item.request = request;
    request.send(item.file);
  });
}

async function sendAll() {
  if (sending) return;
  let params;
  try {
    params = chosenOptions();
  } catch (e) {
    $("#go-note").textContent = `Not sent: ${e.message}`;
    announce($("#go-note").textContent);  // (not the note itself: "Add photos first." after each sending)
    return;
  }
  sending = true;
  // Disabled while sending, the button lets go of the focus, to the page's body, where a screen reader
  // reads nothing: from the keyboard, it waits on the first photo's status line, then goes on to its
  // result (as for a photo restored again).  (Not after a click: its result would pull the page to it.)
  const keyboard = $("#go").matches(":focus-visible");
  refreshButton();
  const first = pending.find(p => !p.sent && !p.removed);
  if (first && keyboard) holdFocus(first.card);
  const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  if (first) first.card.scrollIntoView({behavior: still ? "auto" : "smooth", block: "start"});
  for (const item of pending) {
    if (item.sent || item.removed) continue;
    if (item.file.size > config.max_upload) {
      item.sent = true;
      setState(item.card, "failed", "not sent");
      showError(item.card, `${item.file.name} is ${megabytes(item.file.size)}; this server accepts up to ${megabytes(config.max_upload)} per photo.`);
      continue;
    }
    for (;;) {
      const reply = await upload(item, params);
      item.request = null;
      if (item.removed) {  // removed from the page while it was sent: the server forgets it too
        const sent = reply.body && (reply.body.photo || reply.body);
        if (sent && sent.id) fetch(`/api/photos/${sent.id}`, {method: "DELETE"});
        break;
      }
      if (reply.status === 503 || reply.status === 0) {
        // busy (or gone for a moment): wait as told, then send again
        let wait = Math.max(1, reply.retry);
        const why = (reply.body && reply.body.error) || "the server is busy";
        while (wait > 0 && !item.removed) {
          setState(item.card, "queued", `${why} Trying again in ${wait} s.`);
          await new Promise(r => setTimeout(r, 1000));
          wait -= 1;
        }
        if (item.removed) break;
        continue;
      }
      item.sent = true;
      const photo = reply.body && (reply.body.photo || (reply.body.id ? reply.body : null));
      if (photo) { cards.set(photo.id, item.card); update(item.card, photo); }
      if (reply.status >= 400) {
        setState(item.card, "failed", "could not be restored");
        showError(item.card, (reply.body && reply.body.error) || `error ${reply.status}`);
      }
      break;
    }
    startPolling();
  }
  pending.splice(0, pending.length, ...pending.filter(p => !p.sent && !p.removed));
  sending = false;
  refreshButton();
}

// ------------------------------------------------------------------------------------------- polling
let pollEpoch = 0;  // a poll answered before a photo was sent back must not stop the polling

function startPolling() {
  pollEpoch += 1;
  if (!polling) polling = setInterval(poll, 1000);
}

// The photos' states; true when the session is still there (undefined: the server could not be reached).
async function poll() {
  const epoch = pollEpoch;
  const known = new Set(cards.keys());  // (a photo sent while this poll is answered is not in its answer)
  let body;
  try {
    lastAsked = Date.now();
    const response = await fetch("/api/photos");
    body = await response.json();
  } catch (e) {
    return;  // the server may be busy: try again at the next tick
  }
  let active = false;
  for (const photo of body.photos) {
    let card = cards.get(photo.id);
    if (!card) {  // a photo of this session from before a reload (or sent by another tab)
      if (sending) continue;  // may be the one being sent now: its card learns its id from the reply
      card = makeCard(photo.name);
      card.dataset.status = photo.status;  // (restored before: not announced as new)
      if (photo.status === "failed") card.dataset.failedBefore = "1";  // (nor its error)
      $(".remove", card).addEventListener("click", () => removeCard(card, null));
      cards.set(photo.id, card);
    }
    update(card, photo);
    if (photo.status === "queued" || photo.status === "running" || photo.status === "uploading") active = true;
  }
  if (!sending) {  // photos removed in another tab of this session (or its files deleted there): gone here
    const listed = new Set(body.photos.map(photo => photo.id));
    let gone = false;
    for (const [id, card] of cards) {
      if (known.has(id) && !listed.has(id)) { cards.delete(id); dropCard(card); gone = true; }
    }
    if (gone) afterRemoval();
    if (gone && !body.session && !cards.size) sayFilesWentAway();
  }
  if (!active && !sending && epoch === pollEpoch) { clearInterval(polling); polling = null; }
  warnBeforeTheFilesGo();  // (no photo left: no warning)
  return body.session;
}

// ------------------------------------------------------------------------------------------- start
function showPixelRatio() {  // (it changes with the browser's zoom, and between screens)
  document.documentElement.style.setProperty("--dpr", window.devicePixelRatio || 1);
}

async function start() {
  showPixelRatio();
  window.addEventListener("resize", showPixelRatio);
  config = await (await fetch("/api/config")).json();
  applyDefaults();
  $("#fidelity").addEventListener("input", () => { $("#fidelity").dataset.touched = "1"; showFidelity(); });
  // grain goes with the noise: without denoising there is nothing to remove it with
  const grainFollowsNoise = () => {
    $("#remove_grain").disabled = !$("#denoise").checked;
    if ($("#remove_grain").disabled) $("#remove_grain").checked = false;
  };
  $("#denoise").addEventListener("change", grainFollowsNoise);
  grainFollowsNoise();
  const input = $("#files");
  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  const drop = $("#drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, event => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", event => { event.preventDefault(); addFiles(event.dataTransfer.files); });
  $("#go").addEventListener("click", sendAll);
  $("#forget").addEventListener("click", async () => {
    if (!confirm("Delete all your photos and results from this server?")) return;
    await fetch("/api/session", {method: "DELETE"});
    // the button goes with the results: the focus (unless moved on meanwhile) to where photos are added
    const focused = document.activeElement;
    const refocus = !focused || focused === document.body || $("#results").contains(focused);
    pending.length = 0;
    cards.clear();
    $("#cards").replaceChildren();
    $("#results").hidden = true;
    $("#zip").hidden = true;
    refreshButton();
    if (refocus) $("#files").focus();
    announce("Your photos and results are deleted from this server.");
  });
  await poll();
  startPolling();
  window.addEventListener("focus", () => poll());  // back from another tab: what was done there shows here
  keepWhileInUse();
}

// Back to a page left alone past the server's limit (or whose files another tab deleted): its results
// vanished without a word.  Said where photos are added, and read out.
function sayFilesWentAway() {
  const minutes = Math.round(config.session_seconds / 60);
  const text = "Your photos and results are no longer on this server: it deletes them after " +
    `${minutes} minute${minutes === 1 ? "" : "s"} without use of this page (or they were deleted from ` +
    "another tab). Add the photos again to restore them.";
  const note = $("#drop-added");
  note.textContent = text;
  note.hidden = false;
  announce(text);
}

// The server deletes a session's files after config.session_seconds without a request, and the page
// asks nothing once its photos are done: someone marking defects for an hour, or reading the results
// with a screen reader, lost their photos and marks.  While the page is used (a key, a click, a touch
// or a scroll since its last request), it tells the server, at most four times per period; a page left
// alone lets its files go as the server's limit says, counted from its last request.  While the warning
// below shows, a use tells the server at once; one on the warning itself is left to its button's click
// (the warning gone at Enter's keydown, and the focus handed back, Enter would click what it was handed).
function keepWhileInUse() {
  const period = config.session_seconds * 1000;
  let used = Date.now();
  for (const name of ["pointerdown", "keydown", "input", "wheel"]) {
    document.addEventListener(name, event => {
      used = Date.now();
      const notice = $("#expiry");
      if (!notice.hidden && !notice.contains(event.target)) keepMyPhotos();
    }, {capture: true, passive: true});
  }
  setInterval(() => {
    if (cards.size && used > lastAsked && Date.now() - lastAsked > period / 4) poll();  // (any request keeps it)
  }, Math.min(60_000, period / 8));
  $("#keep").addEventListener("click", keepMyPhotos);  // (a screen reader's click comes without a pointer)
  setInterval(warnBeforeTheFilesGo, Math.min(10_000, warningTime() / 4));
}

// A page left alone (its user fetching another box of photos) lost its files without a warning.  Shortly
// before they go it says so at the bottom of the window and to a screen reader (politely), with a button
// that is a use like any other.  Counted from the page's last request: the server's clock starts with its
// arrival, a little later, so the page is never late.
const WARN_BEFORE = 5 * 60_000;
let focusBeforeWarning = null;

function warningTime() { return Math.min(WARN_BEFORE, config.session_seconds * 1000 / 2); }

function warnBeforeTheFilesGo() {
  const notice = $("#expiry");
  const deadline = lastAsked + config.session_seconds * 1000;
  if (cards.size && Date.now() >= deadline + warningTime() / 4) {
    // past the limit, and the lag of the server's clock (a quarter of the warning, well beyond it): the
    // warning still promised the files that went, over their results.  Asking says what is so (the server
    // ends an expired session before it counts a request); only a session another tab kept is kept
    poll();
    return;
  }
  const due = cards.size > 0 && Date.now() >= deadline - warningTime();
  if (due === !notice.hidden) return;
  if (!due) {
    notice.hidden = true;
    // (the button the focus was on is gone: back where the user was)
    if (notice.contains(document.activeElement)) {
      const was = focusBeforeWarning;
      const back = was && was !== document.body && was.isConnected ? was : $("#files");
      back.focus({preventScroll: true});
    }
    return;
  }
  const at = new Date(deadline).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  const text = `This page has not been used for ${seconds((Date.now() - lastAsked) / 1000)}: the server ` +
    `deletes your photos and results at ${at}, unless the page is used.`;
  $("#expiry-text").textContent = text;
  focusBeforeWarning = document.activeElement;
  notice.hidden = false;
  announce(`${text} Press \u201cKeep my photos\u201d to keep them.`);
}

async function keepMyPhotos() {
  const answer = poll();  // (it counts as asked from now on: the warning goes at once)
  warnBeforeTheFilesGo();
  if (await answer) announce("Your photos and results are kept.");
}

document.addEventListener("DOMContentLoaded", start);
