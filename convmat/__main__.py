import sys

from convmat.cli import main

sys.exit(main())
