import sys

from ci_nix.cli import main

sys.exit(main())
