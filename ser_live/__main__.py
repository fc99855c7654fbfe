import sys

from ser_live.cli import main

sys.exit(main())
