import sys

from steerc.cli import main

sys.exit(main())
