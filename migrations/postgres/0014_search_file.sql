-- SQLite's search documents move to a file of their own (see the SQLite file of the
-- same name). PostgreSQL indexes each message's terms as it is stored: nothing changes.
SELECT 1;
