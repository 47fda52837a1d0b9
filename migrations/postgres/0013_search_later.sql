-- SQLite's search documents are now rewritten in batches (see the SQLite file of the
-- same name). PostgreSQL indexes each message's terms as it is stored: nothing changes.
SELECT 1;
