"""Light mode: a chat client without relay (filter to receive, light push to send, store to
catch up), served by a few service nodes found in the configuration and by peer exchange."""
