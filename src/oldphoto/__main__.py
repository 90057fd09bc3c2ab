import sys

from oldphoto.cli import main

sys.exit(main())
