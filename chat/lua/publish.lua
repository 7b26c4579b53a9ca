-- Publish one sequenced event; ARGV[3] the event, its map header counting the appended seq.
local seq = publish(ARGV[3])
return seq
