"""The server's own defences: loopback only, XSRF on, uploads capped, and it keeps serving."""
import os
import tomllib
import urllib.error
import urllib.request

import pytest
from conftest import ROOT, serve_app
from real_browser import CHROMIUM, open_page, settle

CONFIG = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def test_config_keeps_the_server_private_and_protected():
    settings = CONFIG["server"]
    assert settings["address"] == "localhost" and settings["enableXsrfProtection"] is True
    assert settings["maxUploadSize"] == 20 and settings["fileWatcherType"] == "none"


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's socket table")
def test_started_plainly_it_listens_on_loopback_only_and_refuses_forged_uploads(tmp_path):
    proc, url = serve_app({**os.environ, "CIFAR_RUNS": str(tmp_path / "runs")})  # no --server.address
    port = int(url.rsplit(":", 1)[1])
    try:
        loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1
        addresses = _listening_addresses(port)
        assert addresses and addresses <= loopback, addresses
        # an upload without the XSRF token (what a forged cross-site request looks like) is refused
        request = urllib.request.Request(f"{url}/_stcore/upload_file/session/file", method="PUT",
                                         data=b"--x\r\nContent-Disposition: form-data; name=\"file\"; "
                                              b"filename=\"a.png\"\r\n\r\nabc\r\n--x--\r\n",
                                         headers={"Content-Type": "multipart/form-data; boundary=x"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_oversized_and_hostile_uploads_in_a_real_browser_and_other_sessions_still_served(server, browser, tmp_path):
    import image_zoo
    url, _ = server
    page = open_page(browser, f"{url}/classify_page")
    page.get_by_text("Classifying with").wait_for(timeout=60_000)
    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff\xd8" + os.urandom(21 * 1024 * 1024))  # over the 20 MB limit
    files = []
    for name, (data, _) in image_zoo.bad().items():
        files.append(tmp_path / name)
        files[-1].write_bytes(data)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(big), *map(str, files)])
    page.get_by_text("huge.jpg").wait_for(timeout=30_000)
    page.get_by_text("20.0MB", exact=False).first.wait_for(timeout=30_000)  # refused by the uploader
    page.get_by_text("is not an image PIL can read").first.wait_for(timeout=60_000)
    settle(page)
    assert page.locator("[data-testid='stAlertContentError']").count() >= len(files) - 1
    other = open_page(browser, f"{url}/data_page")  # a second session is served as usual
    other.get_by_text("Images per class").first.wait_for(timeout=60_000)
    assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok"
