"""The reference lab as the core tests see it: parsed from topology/k01-lab.yaml, once per module."""

import pytest
import yaml

from tests.lab_support import LAB_FILE
from vxcap.core.lab.plan import LabNames
from vxcap.core.lab.spec import lab_from_dict


@pytest.fixture(scope="module")
def k01():
    return lab_from_dict(yaml.safe_load(LAB_FILE.read_text()))


@pytest.fixture(scope="module")
def names(k01):
    return LabNames.for_spec(k01, "vxt")
