"""The live room: chat, reactions, pins, moderation and sale events fanned out over websockets."""
