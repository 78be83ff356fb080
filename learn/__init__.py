"""The course (Markdown under ``learn/``) and, in :mod:`learn.tools`, the machinery that checks it."""
