"""``python -m face_aging.bundle``: the documented command, kept at this path. The command is
``face_aging.apps.bundle``; the library ``face_aging.ipcgan.bundle``."""

if __name__ == "__main__":
    from face_aging.apps.bundle import run

    run()
