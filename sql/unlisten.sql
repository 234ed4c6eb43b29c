-- unlisten: stop receiving the notifications of one job's changes, when
-- the web server's last subscriber to it has gone. {channel} as in
-- listen.sql, composed in with psycopg.sql.Identifier.
UNLISTEN {channel};
