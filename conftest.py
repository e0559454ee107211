"""The project's own test settings: the plugin's tests run a real pytest with pytester."""

pytest_plugins = ["pytester"]
