import sys

from sparsecore._cli import main

sys.exit(main())
