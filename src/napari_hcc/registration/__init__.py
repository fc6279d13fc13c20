"""Registration: aligning a session's sequences (and a rat's weeks) in world coordinates, with SimpleITK."""
