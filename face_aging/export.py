"""``python -m face_aging.export``: the documented command, kept at this path. The command is
``face_aging.apps.export``; the exports ``face_aging.ipcgan.export`` and
``face_aging.cyclegan.export``."""

if __name__ == "__main__":
    from face_aging.apps.export import run

    run()
