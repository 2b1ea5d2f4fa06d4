"""Pure page-data builders: catalogue + aggregates in, one typed struct per page out, figures formatted."""
