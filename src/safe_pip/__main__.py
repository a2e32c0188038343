from safe_pip.cli import entrypoint

if __name__ == "__main__":
    entrypoint()
