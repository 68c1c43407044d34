"""Integration fixtures, shared by every module below: the reference Tryton (session), the reference supplier
shop and one Chromium (session), moto's S3 server. Defined once here, so each starts once per session.
"""

from tests.support.erp_fixtures import *  # noqa: F403 - tryton_database, tryton_server
from tests.support.portal_fixtures import *  # noqa: F403 - sandbox_shop, shop, moto_s3, s3_storage, ...
