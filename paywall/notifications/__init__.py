"""Story notifications: Web Push and email alerts for readers with the ``notifications``
feature, tied to their device sessions, once per story and device."""
