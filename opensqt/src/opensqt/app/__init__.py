"""The process composition root: builds the venue client, the state store, the engine, the HTTP
endpoints and the terminal view for one ``opensqt run`` / ``opensqt paper`` process (:mod:`.runner`).

Layer rule: the top of ``opensqt`` (only ``opensqt.cli`` sits above it).  It may import every other
package; nothing but the CLI imports it (enforced by ``opensqt/tests/test_layers.py``).
"""
