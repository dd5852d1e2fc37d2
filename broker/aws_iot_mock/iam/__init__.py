"""The local IAM: users, access keys, inline policies, session credentials, and authorization.

``store`` keeps them in ``<state_dir>/iam.sqlite3``; ``service`` runs the ``aws iam`` / ``aws
sts`` commands on it; ``authorization`` decides what a SigV4 caller may do in AWS IoT.
"""
