from .change_detection import *  # noqa: F401,F403
