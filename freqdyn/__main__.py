import sys

from freqdyn.cli import main

sys.exit(main())
