"""How the user follows a job: in an interactive run the plug-in's own window, with "Keep current"
and "Cancel" (GIMP's status-bar Cancel would end the plug-in process within milliseconds, with
no chance to tell the server); otherwise GIMP's own progress. Both show the same words."""
import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

from nst_contract import client as nst_client  # noqa: E402

TITLE = "Neural Style: painting"  # not the settings dialog's "Neural Style"
KEEP = 1                          # response id of "Keep current"


def time_left(seconds: float) -> str:
    """Plain words for an estimate: "about 3 min left", "less than a minute left"."""
    if seconds >= 90:
        return f"about {round(seconds / 60)} min left"
    return "less than a minute left" if seconds >= 20 else "almost done"


def describe(event: nst_client.JobEvent) -> tuple[str, float | None] | None:
    """(status text, fraction of the work done or None) for an event worth showing."""
    kind = event.kind
    if kind is nst_client.JobEventKind.PROGRESS:
        left = "estimating the time left" if event.remaining is None else time_left(event.remaining)
        return f"Painting: {left}", event.fraction
    if kind in (nst_client.JobEventKind.ACCEPTED, nst_client.JobEventKind.QUEUED):
        if event.position:
            ahead = "1 job" if event.position == 1 else f"{event.position} jobs"
            return f"Waiting for the server ({ahead} ahead)", None
        return "Starting…", None
    return None


class GimpProgress:
    """Non-interactive runs: GIMP's progress (the status bar, or the calling script's)."""
    cancelled = finishing = False

    def __init__(self) -> None:
        Gimp.progress_init("Neural Style")

    def show(self, event: nst_client.JobEvent) -> None:
        shown = describe(event)
        if shown is not None:
            Gimp.progress_set_text(f"Neural Style: {shown[0]}")
            if shown[1] is not None:
                Gimp.progress_update(shown[1])

    def say(self, text: str) -> None:
        Gimp.progress_set_text(f"Neural Style: {text}")

    def pump(self) -> None:
        """Nothing to do: GIMP runs its own progress."""

    def close(self) -> None:
        Gimp.progress_end()


class JobWindow:
    """Interactive runs: a small window with the status, a progress bar, "Keep current" (end now,
    keeping the painting so far) and "Cancel" (nothing changes). Its events are handled whenever
    the client polls (pump), several times a second."""

    def __init__(self) -> None:
        gi.require_version("GimpUi", "3.0")
        gi.require_version("Gtk", "3.0")
        from gi.repository import GimpUi, Gtk
        self._gtk = Gtk
        self.cancelled = self.finishing = False
        self.window = GimpUi.Dialog(title=TITLE, role="neural-style-progress")
        self.window.add_button("_Keep current", KEEP)
        self.window.add_button("_Cancel", Gtk.ResponseType.CANCEL)
        self.window.set_response_sensitive(KEEP, False)  # until there is something to keep
        self.window.connect("response", self._on_response)
        self.window.connect("delete-event", self._on_close)
        box = self.window.get_content_area()
        box.set_spacing(8)
        box.set_border_width(12)
        self.label = Gtk.Label(label="Starting…", xalign=0.0)
        self.bar = Gtk.ProgressBar()
        self.bar.set_size_request(360, -1)
        box.pack_start(self.label, False, False, 0)
        box.pack_start(self.bar, False, False, 0)
        GimpUi.window_set_transient(self.window)
        self.window.show_all()
        self.pump()

    def show(self, event: nst_client.JobEvent) -> None:
        shown = describe(event)
        if shown is not None and not self.finishing:
            self.label.set_text(shown[0])
            if shown[1] is not None:
                self.bar.set_fraction(shown[1])
                self.window.set_response_sensitive(KEEP, True)
        self.pump()

    def say(self, text: str) -> None:
        self.label.set_text(text)
        self.pump()

    def pump(self) -> None:
        while self._gtk.events_pending():
            self._gtk.main_iteration_do(False)

    def close(self) -> None:
        self.window.destroy()
        self.pump()

    def _on_response(self, _window, response):
        if response == KEEP:
            self.finishing = True
            self.label.set_text("Finishing: keeping the painting so far…")
            self.window.set_response_sensitive(KEEP, False)
        else:  # Cancel, or the window closed with Escape
            self.cancelled = True
            self.label.set_text("Cancelling…")

    def _on_close(self, _window, _event):
        self.cancelled = True
        return True  # the window stays until the job has ended
