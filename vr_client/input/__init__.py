"""Input producers (hands, voice, air-writing, keyboard): each runs on its own and puts plain events on a queue."""
