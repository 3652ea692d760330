"""cloud-init's own user-data processing and cloud-config merging, on a user-data blob (stdin).

Used by __tests__/user-data-parts.test.ts: the blob goes through cloud-init's UserDataProcessor
(MIME splitting, gzip, type sniffing, includes and archives as cloud-init would) and every part
through cloud-init's handler walk; cloud-config parts are merged by cloud-init's
CloudConfigPartHandler with the merge rules the parts carry. Prints JSON: the parts as the
handlers see them (type, file name, text) and the merged cloud-config. Nothing is executed.
"""
import json
import sys
import tempfile

from cloudinit import handlers, helpers
from cloudinit import user_data as ud
from cloudinit.handlers.cloud_config import CloudConfigPartHandler
from cloudinit.settings import PER_INSTANCE

blob = sys.stdin.buffer.read()
paths = helpers.Paths({"cloud_dir": tempfile.mkdtemp(prefix="twinwall-ci-")})
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
json.dump({"parts": parts, "merged": merger.cloud_buf}, sys.stdout, default=str)
