"""cloud-init's own user-data processing and cloud-config merging, on a user-data blob (stdin).

Used by __tests__/user-data-parts.test.ts: the blob goes through cloud-init's UserDataProcessor
(MIME splitting, gzip, type sniffing, includes and archives as cloud-init would) and every part
through cloud-init's handler walk; cloud-config parts are merged by cloud-init's
CloudConfigPartHandler with the merge rules the parts carry. Prints JSON: the parts as the
handlers see them (type, file name, text), the merged cloud-config, and what cloud-init logged at
WARNING or above (the boot tier fails on those). Nothing is executed.
"""
import json
import logging
import sys
import tempfile

from cloudinit import handlers, helpers
from cloudinit import user_data as ud
from cloudinit.handlers.cloud_config import CloudConfigPartHandler
from cloudinit.settings import PER_INSTANCE

# What cloud-init would log at WARNING or above while reading the parts (the boot tier fails on those).
warnings = []


class Collect(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())


logging.getLogger().addHandler(Collect(level=logging.WARNING))
blob = sys.stdin.buffer.read()
class Datasource:
    """The instance id cloud-init's paths ask for (a real boot has a datasource)."""

    def get_instance_id(self):
        return "i-twinwall-test"


scratch = tempfile.TemporaryDirectory(prefix="twinwall-ci-")
paths = helpers.Paths({"cloud_dir": scratch.name}, ds=Datasource())
message = ud.UserDataProcessor(paths).process(blob)
merger = CloudConfigPartHandler(paths)
merger.cloud_fn = None  # nothing is written
parts = []


def callback(_data, filename, payload, headers):
    ctype = headers["Content-Type"]
    text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
    parts.append({"type": ctype, "filename": filename, "text": text})
    if ctype in merger.list_types():
        handlers.run_part(merger, None, filename, payload, PER_INSTANCE, headers)


handlers.call_begin(merger, None, PER_INSTANCE)
handlers.walk(message, callback, {})
scratch.cleanup()
json.dump({"parts": parts, "merged": merger.cloud_buf, "warnings": warnings}, sys.stdout, default=str)
