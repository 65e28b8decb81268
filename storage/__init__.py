"""Persistence: SQLCipher profile databases and archive backends. Imports nothing from chat/
or ui/.

    profiles.py, kdf.py, keyfile.py   Profiles on disk: create, list, unlock, change the
                                      passphrase, delete; the Argon2id key and key.json
    db.py, migrations/                Database: one SQLCipher connection with typed errors
                                      (errors.py); the numbered SQL migrations
    store.py, repositories/           Store: an unlocked profile, one repository per aggregate
    aio.py                            AsyncStore: every database call on one worker thread
    archive/                          the service node's message archive (Archive,
                                      SqliteArchive)

Nothing is imported here: the service node needs only archive/, not SQLCipher.
"""
