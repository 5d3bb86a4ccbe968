"""test-events.py on BM_STORE=redis (issue 16): integration events with
the Redis backend under every server and botmatic-keys (SKIP without
redis-server).  The test itself is test-events.py; this sets the store it
reads and runs it."""
import os
import runpy
import sys

os.environ["BM_TEST_EVENTS_STORE"] = "redis"
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
runpy.run_path(os.path.join(here, "test-events.py"), run_name="__main__")
