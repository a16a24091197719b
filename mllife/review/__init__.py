"""The review desk: served predictions ordered by how much they need a person, and what
a reviewer does with them (label, add to a known problem, skip). ``mllife serve`` shows
it at ``/review``; ``mllife review`` in a terminal."""
