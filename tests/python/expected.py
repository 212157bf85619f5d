"""Values every Python compatibility test expects from a fresh tollgate (shared by tests that
run in different venvs: plain Python only)."""

import re

# The fixed roles tollgate serves (src/service/access.rs), as GET /api/access-control/roles
# lists them: by name.
FIXED_ROLES = [
    "fixed:alerting:reader", "fixed:alerting:writer", "fixed:apikeys:writer", "fixed:audit:reader",
    "fixed:backup:creator",
    "fixed:datasources.id:reader", "fixed:datasources:reader", "fixed:datasources:writer",
    "fixed:ldap:reader", "fixed:ldap:writer", "fixed:licensing:reader", "fixed:licensing:writer",
    "fixed:org.users:reader", "fixed:org.users:writer", "fixed:organization:maintainer",
    "fixed:organization:reader", "fixed:organization:writer", "fixed:provisioning:writer",
    "fixed:roles:writer", "fixed:serviceaccounts:writer", "fixed:settings:reader",
    "fixed:settings:writer", "fixed:stats:reader", "fixed:usagestats:reader", "fixed:users:reader",
    "fixed:users:writer",
]

# A service-account token as Grafana's satokengen makes it: glsa_<32 alphanumerics>_<crc32 hex>.
SA_TOKEN = re.compile(r"glsa_[0-9A-Za-z]{32}_[0-9a-f]{8}")
