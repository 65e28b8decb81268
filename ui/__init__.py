"""The Textual face of chinwag. Talks only to chat.Messenger, never to the node or the DB."""
