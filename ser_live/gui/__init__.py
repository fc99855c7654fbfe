"""The desktop app (PyQt6 + pyqtgraph). The only package of ser-live that imports Qt.

Modules:
- ``plots``: the waveform, level meter, rolling probabilities and legend widgets;
- ``envelope``: the waveform's min/max columns, updated with only the new audio;
- ``window``: the main window: toolbar (``MainWindow._build_toolbar``), menus, shortcuts,
  sources and the timer that pulls results;
- ``widgets``: small parts of it (paint counter, number controls, icons, level);
- ``about``: the about box with the model card;
- ``preferences``: what is remembered between runs (QSettings keys);
- ``app``: ``run_app(args)``, called by the ``ser-live`` command: display check, QApplication,
  and the ``--screenshot`` mode.

The session the window drives is ``ser_live.session`` (no Qt; headless uses it too).

Thread roles: the engine's worker thread hands every result to a sink that only appends to a
thread-safe deque (and, while recording, writes the WAV and CSV); the GUI thread drains that
deque and peeks at the newest audio on a 30 ms QTimer. Only the GUI thread touches widgets,
and it never waits on audio or on the model.
"""
