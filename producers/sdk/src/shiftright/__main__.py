import sys

from shiftright.cli import main

sys.exit(main())
