"""The pages: the catalogue, providers, rankings and guides as HTML for people and Markdown for machines.

Layout: `sources` is the only I/O (cached aggregates from the store and the live health tracker);
`pages/` are pure functions from those to small typed page structs, every figure already formatted;
`render` turns one struct into HTML or Markdown with Jinja2 templates that only print; `routes`
wires paths, content types and security headers. Nothing on the inference path imports this package.
"""
