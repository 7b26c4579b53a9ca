"""The relay benchmark's HLS viewer: joining at the live edge and following a sliding playlist."""

from __future__ import annotations

from loadtest.bench_relay.hls import Follower, HlsViewer, Playlist


def _playlist(first: int, count: int, target: int = 1, extra: str = "", dur: float = 1.0) -> str:
    lines = ["#EXTM3U", f"#EXT-X-TARGETDURATION:{target}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    lines += [extra] if extra else []
    lines.append('#EXT-X-MAP:URI="s-init.mp4"')
    for seq in range(first, first + count):
        lines += [f"#EXTINF:{dur:.6f},", f"s-{seq:05d}.m4s"]
    return "\n".join(lines) + "\n"


def test_parse_reads_what_a_player_needs() -> None:
    """Target duration, media sequence, hold-back, init section and segments are parsed."""
    p = Playlist.parse(
        _playlist(7, 3, 2, "#EXT-X-SERVER-CONTROL:HOLD-BACK=4.5,CAN-BLOCK-RELOAD=YES")
    )
    assert (p.target_s, p.first_seq, p.hold_back_s, p.init) == (2.0, 7, 4.5, "s-init.mp4")
    assert [uri for _, uri in p.segments] == ["s-00007.m4s", "s-00008.m4s", "s-00009.m4s"]


def test_joins_live_sync_target_durations_behind_the_end() -> None:
    """Without HOLD-BACK the player starts two target durations before the playlist's end."""
    f = Follower(live_sync=2)
    assert f.new(Playlist.parse(_playlist(10, 6))) == ["s-00014.m4s", "s-00015.m4s"]


def test_hold_back_wins_over_target_duration() -> None:
    """An explicit HOLD-BACK sets how far behind the end the player joins."""
    f = Follower(live_sync=2)
    text = _playlist(0, 6, extra="#EXT-X-SERVER-CONTROL:HOLD-BACK=3.5")
    assert f.new(Playlist.parse(text)) == [
        "s-00002.m4s",
        "s-00003.m4s",
        "s-00004.m4s",
        "s-00005.m4s",
    ]


def test_short_playlist_starts_at_its_first_segment() -> None:
    """A playlist shorter than the hold-back is played from its start."""
    assert Follower().new(Playlist.parse(_playlist(0, 1))) == ["s-00000.m4s"]
    assert Follower().new(Playlist.parse(_playlist(0, 0))) == []


def test_never_fetches_a_segment_twice_as_the_window_slides() -> None:
    """Each reload yields only the segments listed since; each URI comes out once, in order."""
    f = Follower(live_sync=2)
    got: list[str] = []
    got += f.new(Playlist.parse(_playlist(0, 3)))
    got += f.new(Playlist.parse(_playlist(0, 3)))  # reloaded, nothing new
    got += f.new(Playlist.parse(_playlist(0, 4)))
    got += f.new(Playlist.parse(_playlist(1, 6)))  # window slid and grew by three
    assert got == ["s-00001.m4s", "s-00002.m4s", "s-00003.m4s"] + [
        f"s-{n:05d}.m4s" for n in (4, 5, 6)
    ]
    assert len(got) == len(set(got))


def test_falling_behind_the_window_jumps_to_what_is_listed() -> None:
    """Segments deleted before the player reloads are skipped, not fetched."""
    f = Follower(live_sync=2)
    assert f.new(Playlist.parse(_playlist(0, 3))) == ["s-00001.m4s", "s-00002.m4s"]
    assert f.new(Playlist.parse(_playlist(10, 2))) == ["s-00010.m4s", "s-00011.m4s"]


def test_playback_clock_runs_at_media_time_and_stalls_when_late() -> None:
    """Frames show at the first frame's decode time plus media time, later only after a stall."""
    v = HlsViewer(lambda uri: None)
    v.frames = [(0, 0.0, 100.0), (1, 0.5, 100.1), (2, 1.0, 102.0), (3, 1.5, 102.0)]
    assert v.shown() == [(0, 100.0), (1, 100.5), (2, 102.0), (3, 102.5)]
