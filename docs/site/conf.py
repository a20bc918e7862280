# Sphinx configuration of the collection's docs site, built by hack/toolchain/docs-site.
# Scaffolded with `antsibull-docs sphinx-init --use-current userservice.deploy` (antsibull-docs 2.28.0)
# and changed for an offline build:
# - no sphinx.ext.intersphinx: its inventories are fetched from docs.python.org and docs.ansible.com
#   at build time. The few labels of the Ansible documentation that the generated pages reference
#   are resolved below, from a fixed table, to links into docs.ansible.com (followed by the reader,
#   never by the build).
# - no sphinx.ext.autodoc: the site documents no Python API.
# Everything else is as sphinx-init writes it, nitpicky included: with `sphinx-build -W` every
# unresolved reference fails the build.

from docutils import nodes

ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/devel/"
# Label -> (page, title) in the Ansible documentation, for the `:ref:` roles antsibull-docs writes.
# A label missing here stays unresolved and fails the build (nitpicky + -W): add it with its page.
ANSIBLE_DOCS_LABELS = {
    "common_return_values": ("reference_appendices/common_return_values.html", "Common return values"),
    "ansible_configuration_settings": ("reference_appendices/config.html", "Ansible Configuration Settings"),
}

project = "userservice.deploy"
copyright = "User Service platform team"

title = "userservice.deploy"
html_short_title = "userservice.deploy"

extensions = ["sphinx_antsibull_ext"]

pygments_style = "ansible"

highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False

display_version = False

html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = "any"

nitpicky = True


def resolve_ansible_docs_label(app, env, node, contnode):
    """A `:ref:` to a label of the Ansible documentation becomes a link to its page there."""
    if node.get("refdomain") != "std" or node.get("reftype") != "ref":
        return None
    target = ANSIBLE_DOCS_LABELS.get(node.get("reftarget"))
    if target is None:
        return None
    page, title = target
    reference = nodes.reference("", "", internal=False, refuri=ANSIBLE_DOCS + page)
    reference += contnode if node.get("refexplicit") else nodes.inline(title, title)
    return reference


def setup(app):
    app.connect("missing-reference", resolve_ansible_docs_label)
