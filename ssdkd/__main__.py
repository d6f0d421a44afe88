"""``python -m ssdkd`` (and ``torchrun ... -m ssdkd``): the ``ssdkd`` command."""

import sys

from ssdkd.cli import main

sys.exit(main())
