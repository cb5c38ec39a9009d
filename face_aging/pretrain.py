"""``python -m face_aging.pretrain``: the documented command, kept at this path. The command is
``face_aging.apps.pretrain``; the library ``face_aging.alexnet``."""

if __name__ == "__main__":
    from face_aging.apps.pretrain import run

    run()
