"""What /metrics serves: the last scan's families rendered once per scan
and format, plus the live registry (process_*, the HTTP server's own
counters) rendered per request.  Lives beside the HTTP server: it is the
server's render cache, not part of collecting."""

import threading
import zlib
from typing import Any, Callable, Dict, List, Tuple

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .collector import VgdriftCollector
from .scanstats import ScanStats


class Exposition:
    """The scan's families change only when a scan finishes, so they are
    rendered (and compressed) once per scan and format, and a scrape costs a
    copy; the `live` registry is rendered per request and appended.  At 64
    VGs rendering alone takes ~10 ms, the whole budget of a scrape."""

    _EOF = b"# EOF\n"

    def __init__(self, stats: ScanStats, live: CollectorRegistry):
        self.stats = stats
        self.scan_registry = CollectorRegistry(auto_describe=True)
        self.scan_registry.register(VgdriftCollector(stats))
        self.live = live
        self._lock = threading.Lock()
        self._cache: Dict[tuple, tuple] = {}
        self._asked: Dict[tuple, str] = {}    # (content type, gzip) -> an Accept asking for it
        # content type -> family name -> (what it was rendered from, its text)
        self._families: Dict[str, Dict[str, tuple]] = {}
        self.refusals: Any = None             # server.Refusals, counted by the server, in `live`

    def warm(self) -> None:
        """Renders the new scan for the formats scrapers asked for so far, so
        that no scrape pays for it (called by the scan loop after a scan)."""
        with self._lock:
            wanted = list(self._asked.items())
        for (_, gzipped), accept in wanted:
            self._scan_part(accept, gzipped)

    def render(self, accept: str, gzipped: bool) -> Tuple[bytes, str]:
        """(body, content type) for a request's Accept header."""
        encoder, content_type = choose_encoder(accept)
        head, comp = self._scan_part(accept, gzipped)
        tail = encoder(self.live)
        if comp is None:
            return head + tail, content_type
        c = comp.copy()
        return head + c.compress(tail) + c.flush(), content_type

    def _scan_part(self, accept: str, gzipped: bool) -> tuple:
        encoder, content_type = choose_encoder(accept)
        key = (self.stats.generation, content_type, gzipped)
        with self._lock:
            cached = self._cache.get(key)
            if len(self._asked) < 8:     # a few formats, not one per odd client
                self._asked.setdefault((content_type, gzipped), accept)
        if cached is None:
            head = self._render_families(encoder, content_type)
            comp = None
            if gzipped:
                # One gzip member for both parts: the compressor is kept
                # after a sync flush and copied for each request's tail.
                comp = zlib.compressobj(6, zlib.DEFLATED, 31)
                head = comp.compress(head) + comp.flush(zlib.Z_SYNC_FLUSH)
            cached = (head, comp)
            with self._lock:
                self._cache = {k: v for k, v in self._cache.items() if k[0] == key[0]}
                self._cache[key] = cached
        return cached

    def _render_families(self, encoder: Callable, content_type: str) -> bytes:
        """The scan registry rendered family by family, each family's text
        reused from the last scan when the family is the same: from one
        scan to the next only a few change (the scan's own counters, each
        VG's scan duration).  prometheus_client 0.2x's OpenMetrics encoder
        takes ~15 ms for 2,000 samples (per-character escaping), which was
        most of the exporter's CPU per scan.  A family's text is a function
        of its name, type, help, unit and samples alone: both formats
        render each family on its own, and OpenMetrics only ends with EOF."""
        before = self._families.get(content_type, {})
        now: Dict[str, tuple] = {}
        parts = []
        for fam in self.scan_registry.collect():
            key = (fam.type, fam.documentation, fam.unit, fam.samples)
            known = before.get(fam.name)
            if known is not None and known[0] == key:
                text = known[1]
            else:
                text = encoder(_Single(fam))
                if text.endswith(self._EOF):      # OpenMetrics: only the very end says EOF
                    text = text[:-len(self._EOF)]
            now[fam.name] = (key, text)
            parts.append(text)
        with self._lock:
            self._families[content_type] = now
        return b"".join(parts)


class _Single:
    """One family as a registry (what the encoders take)."""

    def __init__(self, family: Any) -> None:
        self.family = family

    def collect(self) -> List[Any]:
        return [self.family]
