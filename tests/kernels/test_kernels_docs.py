"""The runnable examples in the public docstrings run."""
import doctest

import kernels.api


def test_public_docstring_examples():
    res = doctest.testmod(kernels.api, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 3 and res.failed == 0
