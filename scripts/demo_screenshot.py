"""Takes docs/images/demo.png: the demo page in headless Chromium after aging a photo.

    python -m face_aging.demo --port=7860 &        # the page, bundled model
    python scripts/demo_screenshot.py --url=http://127.0.0.1:7860/ --output=docs/images/demo.png

Needs the [browser-test] extra (selenium) and Debian's chromium + chromium-driver. Uploads
matplotlib's Grace Hopper photo, ticks "Show all ages", waits for the strip, and saves the
window as a PNG of 256 colours (--colours; 0 keeps the browser's full-colour PNG, ~2.7x larger).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--output", default=os.path.join("docs", "images", "demo.png"))
    parser.add_argument("--photo", default=None, help="default: matplotlib's grace_hopper.jpg")
    parser.add_argument("--colours", type=int, default=256, help="palette size; 0: full colour")
    parser.add_argument("--size", default="1200,1130", help="window width,height in pixels")
    args = parser.parse_args(argv)
    import matplotlib
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = args.photo or os.path.join(matplotlib.get_data_path(), "sample_data",
                                       "grace_hopper.jpg")
    profile = tempfile.mkdtemp(prefix="face_aging_chromium_")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 f"--window-size={args.size}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(args.url)
        wait = WebDriverWait(driver, 120, poll_frequency=0.2)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]")
                   and d.find_elements(By.CSS_SELECTOR, "#show_all input[type=checkbox]"))
        driver.find_element(By.CSS_SELECTOR, "#show_all input[type=checkbox]").click()
        driver.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(photo)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#strip img")
                   and "every age group" in d.find_element(By.ID, "message").text)
        driver.execute_script("window.scrollTo(0, 0);")
        time.sleep(1.0)  # let the images finish painting
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    from PIL import Image

    from face_aging.files import atomic_path
    from face_aging.images import decode_image

    image = Image.fromarray(decode_image(png, "the screenshot")[0])
    if args.colours:
        image = image.quantize(args.colours, method=Image.Quantize.MEDIANCUT,
                               dither=Image.Dither.NONE)
    with atomic_path(args.output, suffix=".png") as temporary:
        image.save(temporary, optimize=True)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
