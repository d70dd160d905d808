"""The chat example: ``examples.chat.app`` holds the App and the Announcer listener."""
