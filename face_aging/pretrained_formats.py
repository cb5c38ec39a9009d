"""``python -m face_aging.pretrained_formats``: the documented command, kept at this path. The
command is ``face_aging.apps.pretrained_formats``; the library ``face_aging.alexnet.formats``."""

if __name__ == "__main__":
    from face_aging.apps.pretrained_formats import run

    run()
