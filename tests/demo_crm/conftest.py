from tests.demo_crm.service import demo_crm, demo_crm_process  # noqa: F401 (fixtures)
