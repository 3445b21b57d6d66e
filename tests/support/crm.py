"""The demo connector (the demo CRM/ERP's tools) pointed at the demo CRM process."""

import pytest

from apps.connectors.demo import demo_connectors_setup
from tests.support.process import DEMO_CRM_TOKEN


@pytest.fixture
def demo_connector(demo_crm, transactional_db, settings):
    settings.DEMO_CRM_TOKEN = DEMO_CRM_TOKEN
    return demo_connectors_setup(base_url=demo_crm.url)
