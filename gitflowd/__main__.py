import sys

from gitflowd.cli import main

sys.exit(main())
