"""The web page of `u2net serve` in a real browser: headless Chromium
(Debian's chromium and chromium-driver) driven by Selenium (python3-selenium)
loads the page, uploads photos, waits for the results and checks their
pixels against the API's, and a screenshot. Skipped with the reason where
one of them is missing.
"""
import base64
import io
import os
import shutil

import numpy as np

import testlib
from testlib import Skip
from serve_client import ServeProcess
from test_serve import SAMPLE, decode, need_server, small_photo

WAIT_S = 120


def need_browser():
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        raise Skip("Selenium not installed (python3-selenium)")
    for name in ("chromium", "chromedriver"):
        if not shutil.which(name):
            raise Skip("%s not installed (chromium, chromium-driver)" % name)


def start_browser(download_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1400", "--no-proxy-server", "--disable-extensions"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"download.default_directory": download_dir})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


# The pixels of an <img> as the page shows them, by a canvas: RGBA rows.
READ_PIXELS = """
const img = arguments[0];
const c = document.createElement("canvas");
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext("2d");
g.drawImage(img, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data;
let s = "";
for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode.apply(null, d.subarray(i, i + 8192));
return [c.width, c.height, btoa(s)];
"""


def img_pixels(driver, element):
    w, h, b64 = driver.execute_script(READ_PIXELS, element)
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(h, w, 4)


@testlib.tidy
def test_page_in_chromium():
    """Two photos uploaded through the page's file input: both cards finish,
    the cutout's pixels are the API's, the mask type too, the progress says
    2 of 2, and the screenshot shows the page with its images."""
    need_server()
    need_browser()
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    d = testlib.scratch_dir("serve_browser")
    photos = []
    for name, (w, h) in (("first.png", (200, 150)), ("second.png", (120, 160))):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(small_photo(w, h))
        photos.append(path)
    with ServeProcess(["--workers", "2"]) as s:
        driver = start_browser(d)
        try:
            driver.get("http://127.0.0.1:%d/" % s.port)
            WebDriverWait(driver, WAIT_S).until(
                lambda dr: dr.find_elements(By.CSS_SELECTOR, "#model option[value=u2netp]"))
            driver.find_element(By.ID, "file").send_keys("\n".join(photos))
            WebDriverWait(driver, WAIT_S).until(lambda dr: len(dr.find_elements(
                By.CSS_SELECTOR, ".result[data-status=done]")) == 2)
            assert driver.find_element(By.ID, "count").text == "2 of 2 done"
            # the page shows the newest first
            cards = driver.find_elements(By.CSS_SELECTOR, ".result")
            by_name = {c.find_element(By.TAG_NAME, "h2").text: c for c in cards}
            for path in photos:
                card = by_name[os.path.basename(path)]
                got = img_pixels(driver, card.find_element(By.CSS_SELECTOR, "img.output"))
                status, _, body = s.post_image(open(path, "rb").read(), {"threshold": "0.5"})
                want = decode(body)
                assert status == 200 and got.shape == want.shape, (got.shape, want.shape)
                # the canvas keeps colours premultiplied by alpha: within a
                # level where alpha is at least half
                assert np.array_equal(got[..., 3], want[..., 3])
                solid = want[..., 3] >= 128
                diff = np.abs(got[solid][:, :3].astype(int) - want[solid][:, :3].astype(int))
                print("    %s: alpha exact; colour within %d where alpha >= 128 (%d pixels)"
                      % (os.path.basename(path), diff.max(), solid.sum()))
                assert solid.sum() > 100 and diff.max() <= 1
                link = card.find_element(By.CSS_SELECTOR, "a.download")
                assert link.get_attribute("download").endswith("_rgba.png")
            # a mask of the first photo, chosen on the page
            Select(driver.find_element(By.ID, "type")).select_by_value("mask")
            driver.find_element(By.ID, "file").send_keys(photos[0])
            WebDriverWait(driver, WAIT_S).until(lambda dr: len(dr.find_elements(
                By.CSS_SELECTOR, ".result[data-status=done]")) == 3)
            card = driver.find_elements(By.CSS_SELECTOR, ".result")[0]
            got = img_pixels(driver, card.find_element(By.CSS_SELECTOR, "img.output"))
            want = decode(s.post_image(open(photos[0], "rb").read(), {"type": "mask"})[2])
            assert np.array_equal(got[..., 0], want) and (got[..., 3] == 255).all()
            shot = os.path.join(d, "page.png")
            assert driver.save_screenshot(shot)
            im = np.asarray(Image.open(shot).convert("RGB")).astype(np.int64)
            print("    screenshot %dx%d, %d distinct colours" % (im.shape[1], im.shape[0],
                                                                 len(np.unique(im.reshape(-1, 3), axis=0))))
            # the photos and cutouts make it far from a blank page
            assert im.shape[0] >= 600 and len(np.unique(im.reshape(-1, 3), axis=0)) > 1000
            logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert not logs, logs
        finally:
            driver.quit()
        assert s.stop() == 0, s.log
