"""The browser test exports through a real worker: share the export tests' EXPORT_ROOT with it."""

from tests.exports.conftest import _export_root, _remove_export_root  # noqa: F401
