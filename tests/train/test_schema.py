"""The typed training settings: unknown keys and wrong types are errors, defaults come from the schema."""

import dataclasses
import json

import pytest

from oldphoto.train import schema
from oldphoto.train.config import CONFIG_DIR, ConfigError, load_stage_config, preset_names

FAST = ["lambda_vgg=0", "lambda_gan=0"]


def _preset_stages():
    for name in preset_names():
        doc = json.loads((CONFIG_DIR / f"{name}.json").read_text(encoding="utf-8"))
        for stage in doc["stages"]:
            yield name, stage


@pytest.mark.parametrize(("preset", "stage"), list(_preset_stages()))
def test_every_preset_validates_for_every_stage_it_has(preset, stage):
    cfg = load_stage_config(preset, stage, runs_dir="R")
    # complete: every setting of the stage, and nothing else but the recorded preset name
    assert set(cfg) == set(schema.setting_types(stage)) | {"config_name"}
    assert set(cfg["nets"]) <= set(schema.STAGE_NETS[stage])
    schema.check(stage, {k: v for k, v in cfg.items() if k != "config_name"}, "resolved")


def test_every_stage_has_a_preset_section_in_the_tiny_preset():
    assert {s for p, s in _preset_stages() if p == "tiny"} == set(schema.STAGE_NAMES)


def test_unknown_key_via_set_names_key_stage_and_closest_key():
    with pytest.raises(ConfigError, match=r"--set lamda_gan=0: unknown setting 'lamda_gan' for stage "
                                          r"vae_a; did you mean 'lambda_gan'\?"):
        load_stage_config("tiny", "vae_a", ["lamda_gan=0"])
    # a setting of other stages only: said so (the detector has no GAN)
    with pytest.raises(ConfigError, match="'lambda_gan' is not a setting of stage detector"):
        load_stage_config("tiny", "detector", ["lambda_gan=0"])
    with pytest.raises(ConfigError, match="stage detector has no network 'D'"):
        load_stage_config("tiny", "detector", ["nets.D.ndf=8"])
    with pytest.raises(ConfigError, match=r"nets.G \(vae\) has no argument 'widht'.*did you mean 'width'"):
        load_stage_config("tiny", "vae_b", ["nets.G.widht=8"])
    with pytest.raises(ConfigError, match="unknown synth option 'p_contnt'; did you mean 'p_content'"):
        load_stage_config("tiny", "detector", ["synth.p_contnt=0.5"])
    with pytest.raises(ConfigError, match="recorded by the trainer"):
        load_stage_config("tiny", "vae_b", ["device_used=cpu"])


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match=r"'log_every' must be int, got 'ten' \(str\)"):
        load_stage_config("tiny", "vae_b", ["log_every=ten"])
    with pytest.raises(ConfigError, match="'level_align' must be bool"):
        load_stage_config("tiny", "vae_b", ["level_align=1"])
    with pytest.raises(ConfigError, match="'lr' must be float"):
        load_stage_config("tiny", "vae_b", ["lr.x=1"])  # not an object
    with pytest.raises(ConfigError, match="nets.G.width must be int"):
        load_stage_config("tiny", "vae_b", ['nets.G.width="wide"'])
    with pytest.raises(ConfigError, match="'precision' must be"):
        load_stage_config("tiny", "vae_b", ["precision=fp16"])
    with pytest.raises(ConfigError, match="unknown degradation kind 'mixd'; did you mean 'mixed'"):
        load_stage_config("tiny", "vae_a", ["degradation=mixd"])
    # counts below 1 (they failed deep in the loop: "need at least one array to stack")
    with pytest.raises(ConfigError, match="'batch_size' must be at least 1, got 0"):
        load_stage_config("tiny", "vae_b", ["batch_size=0"])
    with pytest.raises(ConfigError, match="'checkpoint_every' must be at least 1"):
        load_stage_config("tiny", "detector", ["checkpoint_every=-5"])
    # an int where a float is expected is fine (JSON has one kind of number)
    assert load_stage_config("tiny", "vae_b", ["lr=1"])["lr"] == 1


def _write(tmp_path, doc, name="mine.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def _tiny():
    return json.loads((CONFIG_DIR / "tiny.json").read_text(encoding="utf-8"))


def test_typo_in_a_config_file_is_rejected(tmp_path):
    doc = _tiny()
    doc["stages"]["vae_b"]["lamda_kl"] = 0.1
    path = _write(tmp_path, doc)
    with pytest.raises(ConfigError, match=r"mine.json: stages.vae_b: unknown setting 'lamda_kl' for stage "
                                          r"vae_b; did you mean 'lambda_kl'\?"):
        load_stage_config(path, "vae_b")
    load_stage_config(path, "detector")  # the other sections are fine
    doc = _tiny()
    doc["common"]["chekpoint_every"] = 5  # in the shared section: an error for every stage
    path = _write(tmp_path, doc)
    with pytest.raises(ConfigError, match="common: unknown setting 'chekpoint_every'.*'checkpoint_every'"):
        load_stage_config(path, "detector")
    doc = _tiny()
    doc["stages"]["vae_bb"] = {}
    with pytest.raises(ConfigError, match="unknown stage 'vae_bb'; did you mean 'vae_b'"):
        load_stage_config(_write(tmp_path, doc), "vae_b")


def test_common_keys_reach_only_the_stages_that_read_them(tmp_path):
    doc = _tiny()
    doc["common"]["nets"] = {"D": {"ndf": 4}}
    doc["common"]["_doc"] = "a comment"
    path = _write(tmp_path, doc)
    det = load_stage_config(path, "detector")
    assert "lambda_kl" not in det and "D" not in det["nets"] and "_doc" not in det
    vae = load_stage_config(path, "vae_b")
    assert vae["lambda_kl"] == 1.0 and vae["nets"]["D"]["ndf"] == 8  # the stage section wins over common
    # the leg's --set is for every stage: each takes the keys it has, a key no stage has is an error
    cfg = load_stage_config("gpu_leg", "detector", shared_overrides=["lambda_vgg=1", "batch_size=3"])
    assert cfg["batch_size"] == 3 and "lambda_vgg" not in cfg
    assert load_stage_config("gpu_leg", "vae_b", shared_overrides=["lambda_vgg=1"])["lambda_vgg"] == 1
    with pytest.raises(ConfigError, match="did you mean 'lambda_vgg'"):
        load_stage_config("gpu_leg", "detector", shared_overrides=["lamda_vgg=1"])


def test_defaults_come_from_the_schema(tmp_path):
    doc = _tiny()
    del doc["common"]["log_every"], doc["common"]["decay_start"]
    del doc["stages"]["detector"]["nets"]
    path = _write(tmp_path, doc)
    fields = {f.name: f.default for f in dataclasses.fields(schema.DetectorSettings)}
    cfg = load_stage_config(path, "detector")
    assert cfg["log_every"] == fields["log_every"] == 10
    assert cfg["decay_start"] is None  # the trainer's half of steps
    assert cfg["focal_gamma"] == fields["focal_gamma"] and cfg["degradation"] == "mixed"
    assert cfg["nets"]["N"] == schema.STAGE_NETS["detector"]["N"].defaults
    # a stage family's own default: the face GAN is SPADE's hinge, the others pix2pixHD's LSGAN
    assert load_stage_config(path, "face")["gan_mode"] == "hinge"
    assert load_stage_config(path, "vae_b")["gan_mode"] == "lsgan"
    assert load_stage_config(path, "mapping_quality")["degradation"] == "unstructured"


def test_a_dict_given_to_train_is_checked_too(tmp_path):
    from oldphoto.train.trainer import train

    cfg = load_stage_config("tiny", "vae_b", FAST, runs_dir=tmp_path)
    cfg["lamda_kl"] = 0.1
    with pytest.raises(ConfigError, match="'lamda_kl'.*did you mean 'lambda_kl'"):
        train("vae_b", cfg, tmp_path / "x", steps=1, quiet=True)
    assert not (tmp_path / "x").exists()  # nothing was written


def _tamper(ckpt_path, **config):
    import torch

    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    state["config"].update(config)
    torch.save(state, ckpt_path)


def test_resume_and_export_refuse_a_stored_config_with_an_unknown_key(tmp_path):
    from oldphoto.train.export import export_runs
    from oldphoto.train.trainer import train

    run = tmp_path / "runs" / "vae_b"
    cfg = load_stage_config("tiny", "vae_b", FAST, runs_dir=tmp_path / "runs")
    train("vae_b", cfg, run, steps=1, quiet=True)
    # a run written before the schema: recorded facts and another stage's settings (a whole ``common``
    # section was merged then) are accepted
    _tamper(run / "checkpoint.pt", p_clean=0.3, photo_source_used="skimage", _doc="old comment")
    assert train("vae_b", cfg, run, steps=1, resume=True, quiet=True)["step"] == 1
    export_runs(tmp_path / "runs", tmp_path / "w1")
    # a key no stage knows is refused, naming the key, the stage and the closest setting
    _tamper(run / "checkpoint.pt", lamda_kl=0.1)
    with pytest.raises(ConfigError, match=r"checkpoint.pt: unknown setting 'lamda_kl' for stage vae_b; "
                                          r"did you mean 'lambda_kl'\?.*cannot be resumed or exported"):
        train("vae_b", cfg, run, steps=2, resume=True, quiet=True)
    with pytest.raises(ConfigError, match="lamda_kl"):
        export_runs(tmp_path / "runs", tmp_path / "w2")
    assert not (tmp_path / "w2").exists()


def test_schema_agrees_with_the_code():
    from oldphoto.train import trainer
    from oldphoto.train.stages import STAGES

    assert tuple(STAGES) == schema.STAGE_NAMES
    assert tuple(trainer.PRECISIONS) == schema.PRECISIONS
    for name, cls in STAGES.items():
        for key, (_role, arch) in cls.exports.items():
            assert schema.STAGE_NETS[name][key].arch == arch
