"""Who may use the dashboard and the alerting API: accounts with roles, sign-in links,
sessions, personal API tokens, read-only share links and the audit trail.

Everything lives in one SQLite file under the state directory
(``<state dir>/access/identity.sqlite``), shared by every process that needs it (the
dashboard, the gateway's alerting API, the command line). No secret is stored or logged
in plain text: passwords as argon2id hashes, sign-in links, session ids, API tokens and
share-link tokens as SHA-256 digests of 256 random bits.
"""
